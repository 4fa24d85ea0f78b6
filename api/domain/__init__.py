"""The domain: suggestions, re-scoring jobs, training, the match workflow, accounts and the job queue."""
