"""fyp package."""
