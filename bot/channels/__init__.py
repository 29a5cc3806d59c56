"""Chat channels (Slack, Microsoft Teams): each turns its platform's events into questions for the
shared conversation service and posts the answers back with citations and feedback actions."""
