"""Sentiment model: loading, batched inference, training and evaluation. Knows nothing of chats."""
