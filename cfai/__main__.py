from cfai.cli import main

main()
