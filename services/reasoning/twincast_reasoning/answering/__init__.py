"""A question into the twin's answer: the engine, its composers, memory, tone and the owner."""
