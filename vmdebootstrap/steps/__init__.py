"""The build steps, one module each; recipe.py runs them in order."""
