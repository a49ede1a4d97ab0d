"""Check my code: the user's own backpropagation in the scratch engine's place."""
