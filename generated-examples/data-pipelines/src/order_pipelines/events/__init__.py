"""Event types, the topic catalog and the serde that turns events into record bytes."""
