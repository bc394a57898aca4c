from kassa import create_app

app = create_app()
