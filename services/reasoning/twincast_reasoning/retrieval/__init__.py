"""Finding the owner's passages: their store, their vectors, and the hybrid index over them."""
