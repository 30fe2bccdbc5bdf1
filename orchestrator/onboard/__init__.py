"""Onboarding a fleet that has never met orch: find and tag it, write its config, get its agent publishing.

Pure decisions (``select``, ``config_file.merged``, ``agent_config``, ``agent_check.judge``,
``agent_install.plan_install``) are separate from the boto3 adapters (``discover``,
``agent_install.execute``) so each rule has a table-driven test without AWS.
"""
