"""deployer: start the compiled Kubeflow pipeline on a run's snapshot."""
