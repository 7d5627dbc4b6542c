from cinekit.cli import main

main()
