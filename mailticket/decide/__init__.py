"""What a mail means and what to do about it: guards, threading, rules, agents' commands, secrets (pure)."""
