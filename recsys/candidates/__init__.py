"""Candidate generators: each proposes items for a batch of baskets; the merger combines them."""
