"""One sweep: observe -> decide -> act -> record, and the fleets it runs on."""
