"""The help topics of `dbdict help TOPIC`: the original dbdict's, for this tool's commands."""

from __future__ import annotations

EXPERIMENT = """
    dbdict serves to run experiments. To define an experiment, you only have
    to define a function respecting the following protocol in a Python file
    or module:

        def my_experiment(state, channel):
            # experiment code goes here

    The return value of my_experiment may be channel.COMPLETE or
    channel.INCOMPLETE. If the latter is returned, the experiment may be
    resumed at a later point. The return value None is channel.COMPLETE.

    Where a dbdict command takes an EXPERIMENT argument, it is the dotted name
    under which Python can import the function: if you defined my_experiment
    in my_module.py (in the current directory or on the Python path), pass
    my_module.my_experiment.

    When my_experiment is entered, the current working directory is a
    directory created for this experiment; where it lies depends on the
    command (dbdict run: --workdir or a name made of the parameters). Do not
    change the working directory.

    state is a dictionary-like object (a DD: state.key and state['key'] both
    work) with the values of the parameters and, as the experiment adds them,
    of its results. The channel saves it at the end of the experiment, and
    whenever the experiment calls channel.save(). The experiment should not
    keep references to objects inside state across a save, as the channel may
    replace them with copies.

    A state holds what JSON can, plus NaN and infinities: None, booleans,
    integers, floats, strings, lists (tuples become lists) and dicts with
    string keys, nested as deep as needed; 16 MB at most in all
    (DBDICT_MAX_STATE_MB). Anything else (numpy arrays and scalars, bytes,
    sets, objects) is refused at the save, naming the key: convert it
    (float(x), array.tolist()), or write it to a file in the working
    directory, which is saved with the state.

    channel is an object with the following important methods:

     - channel.switch() (or channel()) gives control back to the channel. If
       it returns the string 'stop', the experiment was asked to stop
       (SIGTERM or SIGINT, a cancel, a worker shutting down): it may be killed
       soon, so it should save and return channel.INCOMPLETE as soon as
       possible. Otherwise it should go on.

     - channel.save() saves the current state. Call save() and switch() at
       regular intervals (every epoch, say): an experiment can be killed at
       any time, by a power failure for instance.

     - channel.save_and_switch() saves the state, then calls switch(), and
       returns what switch() returns:

           if channel.save_and_switch() == 'stop':
               return channel.INCOMPLETE
"""

PARAMETERS = """
    Where a command takes PARAMS arguments, each takes one of these forms
    (spaces around = and :: are allowed):

    key=value

      Set the parameter `key` to `value`, available to the experiment as
      state.key. The value is read as a Python literal when it is one (1,
      2.5, 'text', [1, 2], {'a': 1}, True, None) and as a plain string
      otherwise (so a=hello is 'hello'). It is never evaluated as code.

      If `key` is a dotted name, the value is set in nested dictionaries, one
      per part.

      Examples:
        a=1             state.a <- 1
        b=2.3           state.b <- 2.3
        c.d="hello"     state.c.d <- 'hello'

    key::builder

      The same as key.__builder__=builder. The builder is a dotted name that
      Python can import, of something callable.

      When a key has a builder, the experiment makes the object with
      make(state.key): it calls the builder with the other keys under
      state.key as keyword arguments.

      Example:
        regexp::re.compile
        regexp.pattern='a.*c'

        from dbdict_celery import make
        def experiment(state, channel):
            regexp = make(state.regexp)   # re.compile(pattern='a.*c')
            print(regexp.sub('blahblah', 'hello abbbbc there'))

      Run with the parameters above, this experiment prints
      'hello blahblah there'.

    Parameter files (dbdict filemerge) hold one key = value per line; blank
    lines and lines starting with # are skipped. A checkpoint (current.conf)
    is such a file.
"""

EXAMPLE = """
    An experiment that trains some model for 100000 iterations, saving its
    progress so that it can be stopped and resumed:

        # in my_experiments.py
        import os

        def experiment(state, channel):
            if os.path.exists('model'):
                model = load_model('model')     # your own checkpoint format
            else:
                model = my_model(state.some_param, state.other_param)
            state.setdefault('iteration', 0)

            def save():
                model.save('model.tmp')
                os.replace('model.tmp', 'model')  # never a half-written checkpoint
                channel.save()

            while state.iteration < 100000:
                model.update()          # train the model for one iteration
                state.iteration += 1
                if state.iteration % 1000 == 0:
                    save()
                if channel.switch() == 'stop':
                    save()
                    return channel.INCOMPLETE

            state.error = model.error()
            save()
            return channel.COMPLETE

    Run it once, in a directory named after its parameters:

        dbdict run my_experiments.experiment some_param=1 other_param=0.1

    Stop it with Ctrl-C or kill (SIGTERM): it saves and returns INCOMPLETE.
    Run the same command again and it resumes from current.conf. A finished
    job is not run again unless you pass --force.

    Working examples ship in the repository's examples/ directory; from the
    repository root (where examples/ is importable):

        dbdict run examples.count.experiment target=50 interval=0.1
"""

EXIT_CODES = """
    Every dbdict command ends with one of these exit codes:

      0  done: the command did what was asked (dbdict run: the experiment
         ended DONE)
      1  a failure: the experiment raised an exception or called sys.exit
         (its run is recorded FAILED), its state could not be saved, or the
         database, the broker or a file failed
      2  a mistake in the command, and nothing ran: a malformed parameter,
         name or option; a job already DONE or RUNNING (--force runs it
         anyway); a working directory holding another job (--restart)
      3  dbdict run and filemerge: the experiment stopped before its end
         (SIGTERM, Ctrl-C), INCOMPLETE, its state saved: the same command
         resumes it

    A mistake (2) and a failure of dbdict itself (1) are told in one line on
    stderr; an exception of the experiment is shown with its traceback.
"""

TOPICS = {
    "example": EXAMPLE,
    "exit-codes": EXIT_CODES,
    "experiment": EXPERIMENT,
    "parameters": PARAMETERS,
}
SUMMARIES = {
    "example": "Example of defining and running an experiment.",
    "exit-codes": "What each exit code of a dbdict command means.",
    "experiment": "How to define an experiment.",
    "parameters": "How to give the parameters of an experiment.",
}
