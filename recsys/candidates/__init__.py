"""Candidate generators: each proposes items for a batch of baskets; the merger combines them.

Modules: ``item_knn`` (implicit BM25/TF-IDF/cosine neighbours), ``cf`` (implicit ALS/BPR + faiss),
``co_purchase`` (lift/NPMI, category complements), ``style_retrieval`` (complementary
categories nearest the basket style), ``popular`` (windows, time decay), ``ann_index`` (faiss
wrapper), ``merger`` (quotas, dedupe, source records). Import from the modules directly.
"""
