from ordo.execution.app import build
from ordo.kit.service import main

main(build)
