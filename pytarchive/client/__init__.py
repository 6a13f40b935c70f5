"""The client side: the command line (cli), the tables it prints (render) and the messages it
exchanges with the service (protocol, which the service imports too). Nothing here imports the
database, the task queue or the tasks: the client runs as any user, with nothing but a socket."""
