"""Train a DeepChem HNNModel on hnnsim mass-spring trajectories, then roll it out in hnnsim.

Run: python docs/examples/deepchem_spring.py [OUTDIR]
"""

import os
import sys

import numpy as np

import integrators
import systems
from hnnsim import Simulator
from hnnsim.deepchem import HNNModel, trajectories_to_datasets

outdir = sys.argv[1] if len(sys.argv) > 1 else "deepchem-spring"
os.makedirs(outdir, exist_ok=True)

# 1. data: five mass-spring orbits from hnnsim's own simulator, as H5MD files
spring = systems.HarmonicOscillator(mass=1.0, k=1.0)
paths = []
for i, amplitude in enumerate([0.4, 0.7, 1.0, 1.3, 1.6]):
    path = os.path.join(outdir, f"spring.{i}.h5")
    Simulator(spring, integrators.Leapfrog(dt=0.05), q0=[amplitude], p0=[0.0]).run(
        600, every=3, out=path, overwrite=True)
    paths.append(path)
train, test = trajectories_to_datasets(paths, test_fraction=0.2, seed=0)

# 2. train with DeepChem's own fit / evaluate
model = HNNModel(n_dof=1, hidden=64, layers=2, seed=0, batch_size=64, learning_rate=3e-3,
                 model_dir=os.path.join(outdir, "model"))
model.fit(train, nb_epoch=40)
metric = __import__("deepchem").metrics.Metric(__import__("deepchem").metrics.mean_squared_error)
print("test MSE of dx/dt:", model.evaluate(test, [metric])["mean_squared_error"])

# 3. the trained network as an hnnsim system, run by a symplectic integrator
learned = model.to_system("spring-deepchem", shape=(1, 1), replace=True)
rollout = Simulator(learned, integrators.ImplicitMidpoint(dt=0.05), q0=[1.0], p0=[0.0]).run(
    2000, every=10, out=os.path.join(outdir, "rollout.h5"), overwrite=True)
truth = Simulator(spring, integrators.ImplicitMidpoint(dt=0.05), q0=[1.0], p0=[0.0]).run(2000, every=10)

true_energy_along_rollout = spring.energy(rollout.q, rollout.p)
print("energy MSE along the rollout (true H):",
      model.compute_energy_mse(truth.energy, true_energy_along_rollout))
print("learned-H drift (relative):", rollout.energy_drift()["max_rel"])
print("coordinate MSE after t = 100:", float(np.mean((rollout.q - truth.q) ** 2)))
