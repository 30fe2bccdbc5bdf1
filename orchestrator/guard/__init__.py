"""`orch guard`: host protections orch proposes, applies with consent through SSM, verifies and can remove.

plan (pure: what to write and why) -> script (pure: the shell script that writes it, marks it
in a manifest, reports status lines, undoes exactly that) -> ssm (the adapter that sends it).
"""
