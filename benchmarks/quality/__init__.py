"""Parts of the search-quality benchmark (``benchmarks/search_quality.py``)."""
