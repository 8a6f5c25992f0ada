"""The Ray job entrypoint of a study: builds the Tuner and streams results into the store."""
