"""Tool-call repair: a stream guard that hands the agent tool calls it can execute."""
