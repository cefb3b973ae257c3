"""What the run pages show, gathered with a bounded number of queries per page (STYLE
habit 10). Views in apps/runs/views.py stay thin: authorize, call one of these, render."""
