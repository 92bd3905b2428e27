r"""Neighbour lists in an orthorhombic periodic box: cell list, Verlet list, minimum image.

Every function here is numba, over flat arrays, for particles in three dimensions. A
particle system keeps its list in its per-member workspace (see
:class:`integrators.base.Workspace`), laid out by :func:`workspace_sizes`::

    iw[0]  status (0 ok; OVERFLOW when a list did not fit; NONFINITE for NaN/inf positions)
    iw[1]  capacity: neighbours per particle the list can hold
    iw[2]  the largest neighbour count found at the last build (what a larger list needs)
    iw[3]  number of builds so far (a diagnostic)
    iw[HEADER : HEADER + N]                      neighbour count of each particle
    iw[HEADER + N : HEADER + N + N * capacity]   neighbours of particle i at [i * capacity, ...)
    then cell starts [n_cells + 1] and the particles sorted by cell [N] (scratch of the
    build; see cell_grid)

    fw[0 : 3N]       positions (unwrapped, as integrated) at the last build
    fw[3N : 6N]      wrapped positions, x then y then z (SoA), refreshed at every force call

Lists are *full* (i has j and j has i) and each particle's neighbours are sorted by
index, so a force sum visits the pairs within the cutoff in the same order whatever list
(which build, which skin, which capacity) holds them: forces do not depend on the list's
history, which is what makes a resumed run and a run with a grown list bit-identical to an
uninterrupted one. A list stays valid while no particle has moved more than half the skin
since the build (Verlet's criterion); :func:`ensure_list` checks that at every force call.

The build bins particles into cells of half the list's reach and visits the 125 cells
around each particle (O(N)); a box too small for that is scanned pair by pair (O(N^2),
small N only).

References: L. Verlet, Phys. Rev. 159, 98 (1967); M. P. Allen & D. J. Tildesley,
*Computer Simulation of Liquids*, 2nd ed., OUP (2017), sec. 5.3.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: length of the workspace header
HEADER = 8
#: ``iw[0]`` after a build whose list did not fit (sticky: only growing the workspace clears it)
OVERFLOW = 1
#: ``iw[0]`` after a build refused for positions that are not finite (no list is built)
NONFINITE = 2


def cell_grid(edges: np.ndarray, reach: float, n_particles: int) -> np.ndarray:
    """``[ncx, ncy, ncz, span]``: cells per direction, each at least ``reach / span`` wide, so
    that the neighbours of a particle lie within ``span`` cells of its own. Cells of half
    the reach (span 2, 125 cells searched) scan 0.58 of the volume of whole ones (span 1,
    27 cells); each direction needs ``2 span + 1`` cells, else all zeros: the build scans
    every pair (small boxes only). Cells are never smaller than needed for about two
    particles each (a short reach in a big box would otherwise ask for millions of cells)."""
    edges = np.asarray(edges, dtype=np.float64)
    spacing = (np.prod(edges) / max(1, n_particles)) ** (1.0 / 3.0)  # mean distance between particles
    for span in (2, 1):
        n = np.floor(edges / max(reach / span, 1.25 * spacing)).astype(np.int64)
        if np.all(n >= 2 * span + 1):
            return np.append(n, span)
    return np.zeros(4, dtype=np.int64)


def workspace_sizes(n_particles: int, capacity: int, n_cells: int) -> tuple[int, int]:
    """``(ni, nf)``: lengths of one member's integer and float workspace."""
    return HEADER + n_particles + n_particles * capacity + n_cells + 1 + n_particles, 6 * n_particles


@nb.njit(inline="always", error_model="numpy")
def minimum_image(d, edge, inv_edge):
    """``d`` shifted by a multiple of ``edge`` into ``[-edge/2, edge/2]``."""
    return d - edge * np.floor(d * inv_edge + 0.5)


@nb.njit(inline="always", error_model="numpy")
def _wrap(x, edge, inv_edge):
    return x - edge * np.floor(x * inv_edge)


#: cells per parallel task of the build (each task owns its candidate buffers)
_CELLS_PER_TASK = 16


@nb.njit(error_model="numpy", cache=True)
def _bin(wx, wy, wz, ilx, ily, ilz, ncx, ncy, ncz, start, order, n):
    """Counting sort by cell: the particles of cell c are ``order[start[c]:start[c + 1]]``,
    in increasing index order."""
    ncells = ncx * ncy * ncz
    start[:] = 0
    for i in range(n):
        start[_cell(wx[i], wy[i], wz[i], ilx, ily, ilz, ncx, ncy, ncz) + 1] += 1
    for c in range(ncells):
        start[c + 1] += start[c]
    for i in range(n):
        c = _cell(wx[i], wy[i], wz[i], ilx, ily, ilz, ncx, ncy, ncz)
        order[start[c]] = i
        start[c] += 1
    for c in range(ncells, 0, -1):
        start[c] = start[c - 1]
    start[0] = 0


@nb.njit(inline="always", error_model="numpy")
def _cell(x, y, z, ilx, ily, ilz, ncx, ncy, ncz):
    cx = min(int(x * ilx * ncx), ncx - 1)
    cy = min(int(y * ily * ncy), ncy - 1)
    cz = min(int(z * ilz * ncz), ncz - 1)
    return (cx * ncy + cy) * ncz + cz


@nb.njit(inline="always", error_model="numpy")
def _sort(a, lo, m):
    """Sort ``a[lo:lo + m]`` in place (insertion sort: particles numbered in spatial order
    give nearly sorted lists, which it sorts in about linear time)."""
    for k in range(lo + 1, lo + m):
        v = a[k]
        b = k - 1
        while b >= lo and a[b] > v:
            a[b + 1] = a[b]
            b -= 1
        a[b + 1] = v


def _moved_too_far(q, fw, n, half_skin2):
    """Whether any particle moved more than half the skin since the last build."""
    for i in range(n):
        dx = q[3 * i] - fw[3 * i]
        dy = q[3 * i + 1] - fw[3 * i + 1]
        dz = q[3 * i + 2] - fw[3 * i + 2]
        if dx * dx + dy * dy + dz * dz > half_skin2:
            return True
    return False


def _build(q, edges, reach2, grid, iw, fw, n):
    """Rebuild the full, sorted Verlet list of every particle within ``sqrt(reach2)`` (serial:
    it runs every ~10-20 steps and costs a fraction of one force evaluation)."""
    cap = iw[1]
    counts = iw[HEADER:HEADER + n]
    nbr = iw[HEADER + n:HEADER + n + n * cap]
    ncx, ncy, ncz, span = grid[0], grid[1], grid[2], grid[3]
    ncells = ncx * ncy * ncz
    head = iw[HEADER + n + n * cap:HEADER + n + n * cap + ncells + 1]
    chain = iw[HEADER + n + n * cap + ncells + 1:HEADER + n + n * cap + ncells + 1 + n]
    lx, ly, lz = edges[0], edges[1], edges[2]
    ilx, ily, ilz = 1.0 / lx, 1.0 / ly, 1.0 / lz
    wx = fw[3 * n:4 * n]
    wy = fw[4 * n:5 * n]
    wz = fw[5 * n:6 * n]
    finite = True
    for i in range(n):
        wx[i] = _wrap(q[3 * i], lx, ilx)
        wy[i] = _wrap(q[3 * i + 1], ly, ily)
        wz[i] = _wrap(q[3 * i + 2], lz, ilz)
        finite &= np.isfinite(wx[i] + wy[i] + wz[i])
    if not finite:  # no cell index from NaN: refuse, the caller reports non-finite forces
        counts[:] = 0
        iw[0] = NONFINITE
        iw[3] += 1
        return
    if ncells > 0:
        _bin(wx, wy, wz, ilx, ily, ilz, ncx, ncy, ncz, head, chain, n)
        for task in nb.prange((ncells + _CELLS_PER_TASK - 1) // _CELLS_PER_TASK):
            cj = np.empty(n, dtype=np.int64)
            gx = np.empty(n)
            gy = np.empty(n)
            gz = np.empty(n)
            r2 = np.empty(n)
            for c in range(task * _CELLS_PER_TASK, min(ncells, (task + 1) * _CELLS_PER_TASK)):
                if head[c] == head[c + 1]:
                    continue
                # candidates: every particle in the (2 span + 1)^3 cells around c, shifted by
                # the box where the cell wraps (then no minimum image is needed below)
                cx = c // (ncy * ncz)
                cy = (c // ncz) % ncy
                cz = c % ncz
                m = 0
                for ox in range(cx - span, cx + span + 1):
                    ax = ox % ncx
                    sx = lx * ((ox - ax) // ncx)
                    for oy in range(cy - span, cy + span + 1):
                        ay = oy % ncy
                        sy = ly * ((oy - ay) // ncy)
                        for oz in range(cz - span, cz + span + 1):
                            az = oz % ncz
                            sz = lz * ((oz - az) // ncz)
                            d = (ax * ncy + ay) * ncz + az
                            for k in range(head[d], head[d + 1]):
                                j = chain[k]
                                cj[m] = j
                                gx[m] = wx[j] + sx
                                gy[m] = wy[j] + sy
                                gz[m] = wz[j] + sz
                                m += 1
                for k0 in range(head[c], head[c + 1]):
                    i = chain[k0]
                    xi, yi, zi = wx[i], wy[i], wz[i]
                    for k in range(m):  # vectorised
                        dx = xi - gx[k]
                        dy = yi - gy[k]
                        dz = zi - gz[k]
                        r2[k] = dx * dx + dy * dy + dz * dz
                    base = i * cap
                    count = 0
                    for k in range(m):
                        if r2[k] < reach2 and cj[k] != i:
                            if count < cap:
                                nbr[base + count] = cj[k]
                            count += 1
                    _sort(nbr, base, min(count, cap))  # by index: lists independent of the cells
                    counts[i] = count
    else:
        for i in nb.prange(n):
            xi, yi, zi = wx[i], wy[i], wz[i]
            base = i * cap
            count = 0
            for j in range(n):
                if j != i:
                    dx = minimum_image(xi - wx[j], lx, ilx)
                    dy = minimum_image(yi - wy[j], ly, ily)
                    dz = minimum_image(zi - wz[j], lz, ilz)
                    if dx * dx + dy * dy + dz * dz < reach2:
                        if count < cap:
                            nbr[base + count] = j
                        count += 1
            counts[i] = count
    most = 0
    for i in range(n):
        most = max(most, counts[i])
        fw[3 * i] = q[3 * i]
        fw[3 * i + 1] = q[3 * i + 1]
        fw[3 * i + 2] = q[3 * i + 2]
    iw[2] = most
    iw[3] += 1
    iw[0] = OVERFLOW if most > cap else 0


def _ensure_list(q, edges, reach2, half_skin2, grid, iw, fw, n):
    """Rebuild the list if it was never built or a particle moved more than half the skin;
    then refresh the wrapped positions. Returns False when the list overflowed (until the
    workspace is grown, every later call returns False too) or the positions are not finite."""
    if iw[0] == OVERFLOW:
        return False
    if iw[3] == 0 or iw[0] != 0 or _moved_too_far(q, fw, n, half_skin2):
        _build_list(q, edges, reach2, grid, iw, fw, n)
        if iw[0] != 0:
            return False
    else:
        lx, ly, lz = edges[0], edges[1], edges[2]
        ilx, ily, ilz = 1.0 / lx, 1.0 / ly, 1.0 / lz
        for i in range(n):
            fw[3 * n + i] = _wrap(q[3 * i], lx, ilx)
            fw[4 * n + i] = _wrap(q[3 * i + 1], ly, ily)
            fw[5 * n + i] = _wrap(q[3 * i + 2], lz, ilz)
    return True


_moved_too_far = nb.njit(error_model="numpy", cache=True)(_moved_too_far)
_build_list = nb.njit(error_model="numpy", cache=True)(_build)
ensure_list = nb.njit(error_model="numpy", cache=True)(_ensure_list)


@nb.njit(error_model="numpy", cache=True)
def half_pairs(iw, n):
    """Pairs ``i < j`` of a built list, shape ``[M, 2]``, sorted."""
    cap = iw[1]
    total = 0
    for i in range(n):
        c = iw[HEADER + i]
        for k in range(c):
            if iw[HEADER + n + i * cap + k] > i:
                total += 1
    out = np.empty((total, 2), dtype=np.int64)
    m = 0
    for i in range(n):
        c = iw[HEADER + i]
        for k in range(c):
            j = iw[HEADER + n + i * cap + k]
            if j > i:
                out[m, 0] = i
                out[m, 1] = j
                m += 1
    return out
