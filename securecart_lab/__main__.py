from securecart_lab.cli import main

main()
