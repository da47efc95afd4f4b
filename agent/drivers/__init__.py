"""Device I/O: register maps (profiles), read planning, decoding and one worker per bus."""
