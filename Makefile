# The two commands of the README: `make demo` and `make test`. Both install what they need first.
.PHONY: install demo test lint up down status clean

install:
	./scripts/install.sh

demo: install
	.venv/bin/fyp demo

test: install
	./scripts/test.sh

lint:
	.venv/bin/ruff check .

up: install
	.venv/bin/fyp up

down:
	.venv/bin/fyp down

status:
	.venv/bin/fyp status

# Removes the local stack's state and logs (not the installed environments).
clean: down
	rm -rf .fyp
