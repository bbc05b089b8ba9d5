"""What is sent: answers rendered from templates, the durable outbox, the transport."""
