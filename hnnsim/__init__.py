"""hnnsim: simulate analytic and learned Hamiltonian systems."""
