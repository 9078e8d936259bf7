"""`make chaos`: the delivery guarantees of generated services, checked against a real broker under kill -9."""
