"""What a gateway process keeps running beside the schema: who is calling and what they may do,
outbound calls under one policy, the caches, and the fan-out of stored versions to subscribers."""
