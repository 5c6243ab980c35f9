"""What every algorithm shares, one concept per module: the contract and registry (``contract``),
dataset statistics (``stats``), the PRNG streams (``prng``), configs (``config``), batches (``batches``),
parameter groups (``params``), distributions (``distributions``), the fused K-step call (``fused``),
policy export (``export``) and checkpoints (``checkpoints``)."""
