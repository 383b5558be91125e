"""Candidate generators: each proposes items for a batch of baskets; the merger combines them.

Modules: ``base`` (the interface), ``item_knn`` (implicit BM25/TF-IDF/cosine neighbours), ``cf``
(implicit ALS/BPR + faiss), ``co_purchase`` (lift/NPMI, category complements), ``style_retrieval``
(complementary categories nearest the basket style), ``popular`` (windows, time decay),
``ann_index`` (faiss wrapper), ``merger`` (quotas, dedupe, source records), ``topk`` (top-k with
exclusions and padding), ``training_data`` (``TrainingData`` from catalog + interactions).
Import from the modules directly.
"""
