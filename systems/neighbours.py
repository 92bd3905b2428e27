r"""Neighbour lists in an orthorhombic periodic box: cell list, Verlet list, periodic images.

Every function here is numba, over flat arrays, for particles in three dimensions. A
particle system keeps its list in its per-member workspace (see
:class:`integrators.base.Workspace`), laid out by :func:`workspace_sizes`::

    iw[0]  status (0 ok; OVERFLOW when a list did not fit; NONFINITE for NaN/inf positions)
    iw[1]  capacity: neighbours per particle the list can hold
    iw[2]  the largest neighbour count found at the last build (what a larger list needs)
    iw[3]  number of builds so far (a diagnostic)
    iw[HEADER : HEADER + N]                      neighbour count of each particle (the list)
    iw[HEADER + N : HEADER + 2N]                 the same for the found rows (see below)
    iw[HEADER + 2N : HEADER + 2N + N * capacity] two uint32 tables of N rows of ``capacity``
                                                 entries (:func:`lists`): the list, then
                                                 the found rows it was transposed from
    then cell starts [n_cells + 1] and the particles sorted by cell [N] (scratch of the
    build; see cell_grid)

    fw[0 : 3N]       positions (unwrapped, as integrated) at the last build
    fw[3N : 7N]      wrapped positions w = q - edge * floor(q / edge), x y z 0 per particle
                     (:func:`wrapped`), refreshed at every force call
    fw[7N : 10N]     the image ``floor(q / edge)`` of each particle, refreshed with w

An entry of a list is ``(j << IMAGE_BITS) | image`` (uint32): the neighbour ``j`` and the
periodic image of ``j`` to use, one of 27 shifts ``s`` in ``{-1, 0, 1}^3`` (``image = (s_x
+ 1) + 3 (s_y + 1) + 9 (s_z + 1)``; :func:`image_shifts`), so that the pair's separation is
the plain difference ``w_i - (w_j + edge * s)``: no minimum image in the force loop. The
images follow the particles between builds: when a particle crosses a face of the box
(its wrapped position jumps by an edge, its image changes) :func:`ensure_list` shifts the
images of its entries and of the entries that name it, so each entry always holds the
image of j nearest to i, the only one that can lie within the cutoff.

Lists are *full* (i has j and j has i) and each particle's neighbours are sorted by
index, so a force sum visits the pairs within the cutoff in the same order whatever list
(which build, which skin, which capacity) holds them, and computes each pair's separation
from the current wrapped positions and the nearest image alone: forces do not depend on
the list's history, which is what makes a resumed run and a run with a grown list
bit-identical to an uninterrupted one. A list stays valid while no particle has moved more
than half the skin since the build (Verlet's criterion); :func:`ensure_list` checks that at
every force call.

The build bins particles into cells of half the list's reach and, cell by cell (two
cells along z at a time, sharing their candidates), gathers the particles of the 125
cells around them (the cells of a column along z are one run of the particles sorted by
cell) and keeps, for each particle, those within the reach (branch-free compaction) as
its *found* row, in any order. Then it transposes the found rows: visiting the particles
j in increasing order and appending j to the row of each particle that found j puts every
row of the list in increasing order with no sort (a counting sort by destination). The
found rows stay: the rows that name i are those of the particles in i's found row, which
is how a face crossing finds them. A box too small for cells is scanned pair by pair
(O(N^2), small N only). The build runs on ``tasks`` threads: the cell pass with columns of
cells claimed one at a time (:func:`claim`), the transposition with a range of rows each;
the lists do not depend on ``tasks``.

References: L. Verlet, Phys. Rev. 159, 98 (1967); M. P. Allen & D. J. Tildesley,
*Computer Simulation of Liquids*, 2nd ed., OUP (2017), sec. 5.3.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

#: length of the workspace header
HEADER = 8
#: ``iw[0]`` after a build whose list did not fit (sticky: only growing the workspace clears it)
OVERFLOW = 1
#: ``iw[0]`` after a build refused for positions that are not finite (no list is built)
NONFINITE = 2
#: bits of a list entry below the neighbour's index: its periodic image (0..26)
IMAGE_BITS = 5
#: ``IMAGE_BITS`` and the mask of the image as uint32 (decoding entries stays unsigned)
IMAGE_SHIFT = np.uint32(IMAGE_BITS)
IMAGE_MASK = np.uint32(2 ** IMAGE_BITS - 1)
#: the image with no shift, (0, 0, 0)
SAME_IMAGE = 13
#: most particles a list can name (an entry is 32 bits)
MAX_PARTICLES = 2 ** (31 - IMAGE_BITS)


@intrinsic
def claim(typingctx, counter):
    """``counter[0] += 1`` atomically (int64 array); returns the value before. Threads that
    take chunks of work this way share it out dynamically: a thread the OS deschedules
    holds up one chunk, not a fixed share (results must not depend on who takes which)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [context.get_constant(types.intp, 0)])
        return builder.atomic_rmw("add", ptr, context.get_constant(types.int64, 1), "monotonic")

    return types.int64(counter), codegen


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
    if n_particles > MAX_PARTICLES:
        raise ValueError(f"neighbour lists hold at most {MAX_PARTICLES} particles, got {n_particles}")
    return HEADER + 2 * n_particles + n_particles * capacity + n_cells + 1 + n_particles, 10 * n_particles


@nb.njit(inline="always", error_model="numpy")
def minimum_image(d, edge, inv_edge):
    """``d`` shifted by a multiple of ``edge`` into ``[-edge/2, edge/2]``."""
    return d - edge * np.floor(d * inv_edge + 0.5)


@nb.njit(inline="always", error_model="numpy")
def lists(iw, n):
    """``(list, scratch)``: uint32 views of the two tables, row i at ``[i * capacity, ...)``
    (unsigned: numba indexes with an unsigned integer without a check for negative indices;
    decode with uint32 operands, e.g. ``e >> IMAGE_SHIFT``, ``e & IMAGE_MASK``)."""
    cap = iw[1]
    both = iw[HEADER + 2 * n:HEADER + 2 * n + n * cap].view(np.uint32)
    return both[:n * cap], both[n * cap:]


@nb.njit(inline="always", error_model="numpy")
def wrapped(fw, n):
    """The wrapped positions, particle i's at ``[4 i, 4 i + 3)`` (one cache line holds two
    particles, so gathering a neighbour touches one line, not three)."""
    return fw[3 * n:7 * n]


@nb.njit(error_model="numpy", cache=True)
def image_shifts(edges):
    """``(sx, sy, sz)``: the shift ``edge * s`` of each of the 27 images, by image code (32
    entries, NaN past 26: whatever 5 bits an entry holds, a lookup stays in bounds)."""
    sx = np.full(32, np.nan)
    sy = np.full(32, np.nan)
    sz = np.full(32, np.nan)
    for c in range(27):
        sx[c] = edges[0] * (c % 3 - 1)
        sy[c] = edges[1] * ((c // 3) % 3 - 1)
        sz[c] = edges[2] * (c // 9 - 1)
    return sx, sy, sz


@nb.njit(inline="always", error_model="numpy")
def _cell(x, y, z, ilx, ily, ilz, ncx, ncy, ncz):
    cx = min(int(x * ilx * ncx), ncx - 1)
    cy = min(int(y * ily * ncy), ncy - 1)
    cz = min(int(z * ilz * ncz), ncz - 1)
    return (cx * ncy + cy) * ncz + cz


@nb.njit(error_model="numpy", cache=True)
def _bin(wx, wy, wz, ilx, ily, ilz, ncx, ncy, ncz, start, order, n):
    """Counting sort by cell: the particles of cell c are ``order[start[c]:start[c + 1]]``,
    in increasing index order. Returns the largest number of particles in a cell."""
    ncells = ncx * ncy * ncz
    start[:] = 0
    for i in range(n):
        start[_cell(wx[i], wy[i], wz[i], ilx, ily, ilz, ncx, ncy, ncz) + 1] += 1
    most = 0
    for c in range(ncells):
        most = max(most, start[c + 1])
        start[c + 1] += start[c]
    for i in range(n):
        c = _cell(wx[i], wy[i], wz[i], ilx, ily, ilz, ncx, ncy, ncz)
        order[start[c]] = i
        start[c] += 1
    for c in range(ncells, 0, -1):
        start[c] = start[c - 1]
    start[0] = 0
    return most


def _find_cells(px, py, pz, pe, edges, reach2, grid, head, found, fcount, cap, n, next_column, most):
    """Found rows (any order) of the particles of the columns of cells along z that this
    thread claims (:func:`claim` on ``next_column``), two cells at a time where the column
    is long enough (their blocks share 5 of 6 layers, gathered once); see
    :func:`_find_cell`."""
    ncx, ncy, ncz, span = grid[0], grid[1], grid[2], grid[3]
    lx, ly, lz = edges[0], edges[1], edges[2]
    width = 2 * span + 1
    step = 2 if ncz >= width + 1 else 1  # a block of width + 1 layers must not wrap onto itself
    size = min(n, width * width * (width + step - 1) * most)
    ce = np.empty(size, dtype=np.uint32)
    gx = np.empty(size)
    gy = np.empty(size)
    gz = np.empty(size)
    r2 = np.empty(2 * size)
    row = np.empty(2 * size, dtype=np.uint32)
    while True:
        column = claim(next_column)
        if column >= ncx * ncy:
            break
        for cz in range(0, ncz, step):
            c = column * ncz + cz
            layers = min(step, ncz - cz)
            if head[c] < head[c + layers]:
                _find_cell(px, py, pz, pe, lx, ly, lz, reach2, ncx, ncy, ncz, span, head, found, fcount, cap,
                           ce, gx, gy, gz, r2, row, c, layers)


@nb.njit(inline="always", error_model="numpy")
def _find_cell(px, py, pz, pe, lx, ly, lz, reach2, ncx, ncy, ncz, span, head, found, fcount, cap,
               ce, gx, gy, gz, r2, row, c, layers):
    """Found rows of the particles of cells ``c .. c + layers - 1`` (consecutive along z):
    every particle j of the cells within ``span`` of theirs, at the image of its cell (box
    shifts where the block wraps, at most once per direction), whose separation ``w_i -
    (w_j + shift)`` is shorter than the reach. ``px, py, pz, pe``: wrapped positions and
    entries ``j << IMAGE_BITS`` in cell order, so that the cells of a column along z are
    one run (two or three where the block wraps)."""
    cx = c // (ncy * ncz)
    cy = (c // ncz) % ncy
    cz = c % ncz
    top = cz + layers - 1
    m = 0
    own = 0  # where the particles of c start among the candidates
    for ox in range(cx - span, cx + span + 1):
        tx = -1 if ox < 0 else (1 if ox >= ncx else 0)
        ax = ox - tx * ncx
        for oy in range(cy - span, cy + span + 1):
            ty = -1 if oy < 0 else (1 if oy >= ncy else 0)
            ay = oy - ty * ncy
            column = (ax * ncy + ay) * ncz
            sx, sy = lx * tx, ly * ty
            for tz in range(-1, 2):  # the column's run below z = 0, inside, above z = L
                z0 = max(cz - span - tz * ncz, 0)
                z1 = min(top + span - tz * ncz, ncz - 1)
                if z0 > z1:
                    continue
                code = np.uint32((tx + 1) + 3 * (ty + 1) + 9 * (tz + 1))
                sz = lz * tz
                a = head[column + z0]
                if ox == cx and oy == cy and tz == 0:
                    own = m + head[c] - a
                for k in range(a, head[column + z1 + 1]):  # vectorised
                    ce[m + k - a] = pe[k] | code
                    gx[m + k - a] = px[k] + sx
                    gy[m + k - a] = py[k] + sy
                    gz[m + k - a] = pz[k] + sz
                m += head[column + z1 + 1] - a
    # the particles two at a time: two independent compactions interleave
    size = r2.shape[0] // 2
    first = head[c]
    last = head[c + layers]
    for k0 in range(first, last, 2):
        xa, ya, za = px[k0], py[k0], pz[k0]
        two = k0 + 1 < last
        b0 = k0 + 1 if two else k0
        xb, yb, zb = px[b0], py[b0], pz[b0]
        for k in range(m):  # vectorised
            dx = xa - gx[k]
            dy = ya - gy[k]
            dz = za - gz[k]
            r2[k] = dx * dx + dy * dy + dz * dz
            dx = xb - gx[k]
            dy = yb - gy[k]
            dz = zb - gz[k]
            r2[size + k] = dx * dx + dy * dy + dz * dz
        r2[own + k0 - first] = reach2  # not the particle itself
        r2[size + own + b0 - first] = reach2
        na = 0
        nb_ = size
        for k in range(m):  # branch-free compaction
            e = ce[k]
            row[na] = e
            na += r2[k] < reach2
            row[nb_] = e
            nb_ += r2[size + k] < reach2
        _store_row(row, 0, na, pe[k0] >> IMAGE_SHIFT, found, fcount, cap)
        if two:
            _store_row(row, size, nb_ - size, pe[b0] >> IMAGE_SHIFT, found, fcount, cap)


@nb.njit(inline="always", error_model="numpy")
def _store_row(row, at, count, i, found, fcount, cap):
    fcount[i] = count
    base = i * cap
    for k in range(min(count, cap)):
        found[base + k] = row[at + k]


def _scan_pairs(wx, wy, wz, edges, reach2, found, fcount, cap, n, lo, hi):
    """Rows ``found[i]`` for ``i`` in ``lo..hi-1`` by a scan of every pair (boxes too small
    for cells), each neighbour at its image nearest to i."""
    lx, ly, lz = edges[0], edges[1], edges[2]
    ilx, ily, ilz = 1.0 / lx, 1.0 / ly, 1.0 / lz
    for i in range(lo, hi):
        xi, yi, zi = wx[i], wy[i], wz[i]
        base = i * cap
        count = 0
        for j in range(n):
            if j != i:
                tx = np.floor((xi - wx[j]) * ilx + 0.5)
                ty = np.floor((yi - wy[j]) * ily + 0.5)
                tz = np.floor((zi - wz[j]) * ilz + 0.5)
                dx = xi - (wx[j] + lx * tx)
                dy = yi - (wy[j] + ly * ty)
                dz = zi - (wz[j] + lz * tz)
                if dx * dx + dy * dy + dz * dz < reach2:
                    if count < cap:
                        found[base + count] = (j << IMAGE_BITS) | int((tx + 1) + 3 * (ty + 1) + 9 * (tz + 1))
                    count += 1
        fcount[i] = count


def _transpose(found, fcount, nbr, counts, cap, n, lo, hi):
    """Rows ``lo..hi-1`` of the list: i's row gets j (at the opposite image) for every j,
    in increasing order, whose found row holds i."""
    for i in range(lo, hi):
        counts[i] = 0
    for j in range(n):
        base = j * cap
        for k in range(fcount[j]):
            e = found[base + k]
            i = e >> IMAGE_SHIFT
            if lo <= i < hi:
                c = counts[i]
                if c < cap:
                    nbr[i * cap + c] = (j << IMAGE_BITS) | (26 - (e & IMAGE_MASK))
                counts[i] = c + 1


def _build(q, edges, reach2, grid, iw, fw, n, tasks):
    """Rebuild the full, sorted Verlet list of every particle within ``sqrt(reach2)``, on
    ``tasks`` threads (1: serial; the result does not depend on it)."""
    cap = iw[1]
    counts = iw[HEADER:HEADER + n]
    fcount = iw[HEADER + n:HEADER + 2 * n]
    nbr, found = lists(iw, n)
    ncx, ncy, ncz = grid[0], grid[1], grid[2]
    ncells = ncx * ncy * ncz
    cells = HEADER + 2 * n + n * cap
    head = iw[cells:cells + ncells + 1]
    chain = iw[cells + ncells + 1:cells + ncells + 1 + n]
    lx, ly, lz = edges[0], edges[1], edges[2]
    ilx, ily, ilz = 1.0 / lx, 1.0 / ly, 1.0 / lz
    w = wrapped(fw, n)
    wx = w[0::4]
    wy = w[1::4]
    wz = w[2::4]
    image = fw[7 * n:10 * n]
    bad = 0
    for i in range(n):
        tx = np.floor(q[3 * i] * ilx)
        ty = np.floor(q[3 * i + 1] * ily)
        tz = np.floor(q[3 * i + 2] * ilz)
        w[4 * i] = q[3 * i] - lx * tx
        w[4 * i + 1] = q[3 * i + 1] - ly * ty
        w[4 * i + 2] = q[3 * i + 2] - lz * tz
        w[4 * i + 3] = 0.0
        image[3 * i] = tx
        image[3 * i + 1] = ty
        image[3 * i + 2] = tz
        if not np.isfinite(w[4 * i] + w[4 * i + 1] + w[4 * i + 2]):
            bad += 1
    iw[3] += 1
    if bad:  # no cell index from NaN: refuse, the caller reports non-finite forces
        counts[:] = 0
        fcount[:] = 0
        iw[0] = NONFINITE
        return
    if ncells > 0:
        most = _bin(wx, wy, wz, ilx, ily, ilz, ncx, ncy, ncz, head, chain, n)
        px = np.empty(n)
        py = np.empty(n)
        pz = np.empty(n)
        pe = np.empty(n, dtype=np.uint32)
        for k in range(n):
            j = chain[k]
            px[k] = w[4 * j]
            py[k] = w[4 * j + 1]
            pz[k] = w[4 * j + 2]
            pe[k] = j << IMAGE_BITS
        next_column = np.zeros(1, dtype=np.int64)
        for t in nb.prange(tasks):
            _find_cells(px, py, pz, pe, edges, reach2, grid, head, found, fcount, cap, n, next_column, most)
    else:
        for t in nb.prange(tasks):
            _scan_pairs(wx, wy, wz, edges, reach2, found, fcount, cap, n, t * n // tasks, (t + 1) * n // tasks)
    most = 0
    for i in range(n):
        most = max(most, fcount[i])
    if most <= cap:
        for t in nb.prange(tasks):
            _transpose(found, fcount, nbr, counts, cap, n, t * n // tasks, (t + 1) * n // tasks)
        for i in range(n):  # equal to the found counts, but for pairs at the reach to round-off
            most = max(most, counts[i])
    else:
        counts[:] = 0
    for i in range(3 * n):
        fw[i] = q[i]
    iw[2] = most
    iw[0] = OVERFLOW if most > cap else 0


@nb.njit(error_model="numpy", cache=True)
def _shift_images(iw, n, i, shift):
    """Particle i's wrapped position moved by ``-edge * d`` (it crossed faces of the box;
    ``shift = d_x + 3 d_y + 9 d_z``): the images of i's entries shift by ``-d``, those of
    the entries that name i by ``+d``. The rows naming i are those of i's found row (the
    list is the transpose of the found rows); i's entry in each is found by bisection."""
    cap = iw[1]
    nbr, found = lists(iw, n)
    base = i * cap
    for k in range(iw[HEADER + i]):
        nbr[base + k] -= shift
    for k in range(iw[HEADER + n + i]):
        j = found[base + k] >> IMAGE_SHIFT
        lo = j * cap
        hi = lo + iw[HEADER + j]
        while lo < hi:
            mid = (lo + hi) // 2
            if (nbr[mid] >> IMAGE_SHIFT) < i:
                lo = mid + 1
            else:
                hi = mid
        if lo < j * cap + iw[HEADER + j] and (nbr[lo] >> IMAGE_SHIFT) == i:
            nbr[lo] += shift


@nb.njit(error_model="numpy", cache=True)
def _refresh(q, edges, half_skin2, iw, fw, n):
    """Wrap the positions into ``fw`` and follow particles across faces of the box; False
    (and nothing else to rely on) when a particle moved more than half the skin since the
    build or a position is not finite: the list must be rebuilt."""
    lx, ly, lz = edges[0], edges[1], edges[2]
    ilx, ily, ilz = 1.0 / lx, 1.0 / ly, 1.0 / lz
    w = wrapped(fw, n)
    image = fw[7 * n:10 * n]
    for i in range(n):
        x, y, z = q[3 * i], q[3 * i + 1], q[3 * i + 2]
        dx = x - fw[3 * i]
        dy = y - fw[3 * i + 1]
        dz = z - fw[3 * i + 2]
        if not dx * dx + dy * dy + dz * dz <= half_skin2:  # also NaN
            return False
        tx = np.floor(x * ilx)
        ty = np.floor(y * ily)
        tz = np.floor(z * ilz)
        w[4 * i] = x - lx * tx
        w[4 * i + 1] = y - ly * ty
        w[4 * i + 2] = z - lz * tz
        if tx != image[3 * i] or ty != image[3 * i + 1] or tz != image[3 * i + 2]:
            ux, uy, uz = tx - image[3 * i], ty - image[3 * i + 1], tz - image[3 * i + 2]
            if max(abs(ux), abs(uy), abs(uz)) > 1.0:  # only where positions lose their units digit
                return False
            shift = int(ux) + 3 * int(uy) + 9 * int(uz)
            image[3 * i] = tx
            image[3 * i + 1] = ty
            image[3 * i + 2] = tz
            _shift_images(iw, n, i, shift)
    return True


_find_cells = nb.njit(error_model="numpy", cache=True)(_find_cells)
_scan_pairs = nb.njit(error_model="numpy", cache=True)(_scan_pairs)
_transpose = nb.njit(error_model="numpy", cache=True)(_transpose)
_build_serial = nb.njit(error_model="numpy", cache=True)(_build)
_build_parallel = nb.njit(error_model="numpy", parallel=True)(_build)


@nb.njit(error_model="numpy", cache=True)
def ensure_list(q, edges, reach2, half_skin2, grid, iw, fw, n, tasks=1):
    """Rebuild the list if it was never built or a particle moved more than half the skin
    (on ``tasks`` threads); else refresh the wrapped positions and images. Returns False
    when the list overflowed (until the workspace is grown, every later call returns False
    too) or the positions are not finite."""
    if iw[0] == OVERFLOW:
        return False
    if iw[3] == 0 or iw[0] != 0 or not _refresh(q, edges, half_skin2, iw, fw, n):
        if tasks > 1:
            _build_parallel(q, edges, reach2, grid, iw, fw, n, tasks)
        else:
            _build_serial(q, edges, reach2, grid, iw, fw, n, 1)
        if iw[0] != 0:
            return False
    return True


@nb.njit(error_model="numpy", cache=True)
def half_pairs(iw, n):
    """Pairs ``i < j`` of a built list, shape ``[M, 2]``, sorted."""
    cap = iw[1]
    nbr, _ = lists(iw, n)
    total = 0
    for i in range(n):
        for k in range(iw[HEADER + i]):
            if nbr[i * cap + k] >> IMAGE_SHIFT > i:
                total += 1
    out = np.empty((total, 2), dtype=np.int64)
    m = 0
    for i in range(n):
        for k in range(iw[HEADER + i]):
            j = nbr[i * cap + k] >> IMAGE_SHIFT
            if j > i:
                out[m, 0] = i
                out[m, 1] = j
                m += 1
    return out
