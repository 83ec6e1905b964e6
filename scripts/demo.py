"""Placeholder for the crk demo (the lead replaces it): checks that MPI starts."""
from mpi4py import MPI

comm = MPI.COMM_WORLD
print(f"crk demo placeholder: rank {comm.rank} of {comm.size}", flush=True)
