"""From (lock, what the indexes publish) to findings and the edits that repair them."""
