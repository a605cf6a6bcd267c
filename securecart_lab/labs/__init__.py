"""The labs runtime: manifests, workspaces, provisioning and checking of labs/NN-slug/ folders."""
