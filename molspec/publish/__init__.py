"""Publishing a build: the dataset card, the structure plots and the push to the Hugging Face Hub."""
