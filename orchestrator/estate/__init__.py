"""Regions, accounts and the healers deployed across them."""
