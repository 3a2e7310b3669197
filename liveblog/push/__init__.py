"""Web Push for key events: readers' subscriptions, checked (endpoints.py); the VAPID key
(vapid.py); what a push says (payload.py); how it is sent without ever being pointed at the
server's own network (transport.py); and the sender that does it outside the request
(sender.py). Writes go through services.py and reads through selectors.py, as everywhere.
"""
