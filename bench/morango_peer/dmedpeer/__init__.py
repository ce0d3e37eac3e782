"""A one-model Django app for the Morango peer benchmark."""
