# The two commands of the README: `make demo` and `make test`. Both install what they need first.
.PHONY: install demo test test-cluster lint up down status clean

install:
	./scripts/install.sh

demo: install
	.venv/bin/fyp demo

test: install
	./scripts/test.sh

# The cluster profile's failure tests (tests/cluster: broker and TaskManager SIGKILLs under traffic), on a fresh
# cluster stack of their own (3 Kafka brokers, Redis Cluster, 2 TaskManagers), stopped at the end; one left
# behind by a killed run is stopped first.
TEST_CLUSTER_HOME ?= $(CURDIR)/.fyp/test-cluster
# Offset 2000 keeps every port apart from the default stack's and from make test's (offset 200).
TEST_CLUSTER_PORT_OFFSET ?= 2000
test-cluster: install
	-FYP_PROFILE=cluster FYP_HOME="$(TEST_CLUSTER_HOME)" FYP_PORT_OFFSET=$(TEST_CLUSTER_PORT_OFFSET) \
	  .venv/bin/fyp down >/dev/null 2>&1
	rm -rf "$(TEST_CLUSTER_HOME)"
	FYP_PROFILE=cluster FYP_HOME="$(TEST_CLUSTER_HOME)" FYP_PORT_OFFSET=$(TEST_CLUSTER_PORT_OFFSET) \
	  .venv/bin/python -m pytest tests/cluster -q -p no:cacheprovider -x -rP --durations=5  # -rP: recovery times

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
