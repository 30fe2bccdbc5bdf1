"""Telling people: what is news, its formats, SNS and webhooks."""
