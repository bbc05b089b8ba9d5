"""Raw bytes to an InboundMail: MIME, charsets, bounces, identities (pure)."""
