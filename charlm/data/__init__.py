"""Text to tokens: tokenizers, the token cache, the corpus, the truncated-BPTT batcher."""
