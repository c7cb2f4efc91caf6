"""Channel adapters: translate platform traffic to and from the neutral messages in `bot.messages`.

Adapters never import `storage` or `nlp`; they get a message handler and an SDK client from the
caller.
"""
