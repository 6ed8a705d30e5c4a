"""The owner's material: files read into passages and kept in step with the twin's store."""
