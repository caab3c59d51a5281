from dashapp import create_app

app = create_app()
