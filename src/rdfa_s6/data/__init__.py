"""Data: annotation and feature readers, datasets, transforms, the synthetic generator, coordinates."""
