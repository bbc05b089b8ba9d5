"""Ways in: the SMTP listener, IMAP pollers, bulk import; each hands raw mail to intake."""
