package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/feedbackd/feedbackd/server/store/sqlite"
)

// errBackupPostgres and errRestorePostgres say where PostgreSQL's own
// tools take over: docs/operations.md shows them.
var (
	errBackupPostgres = errors.New("backup copies the embedded SQLite database only; back up PostgreSQL with its own tools: " +
		"pg_dump -Fc (a logical copy), or a base backup with WAL archiving for point-in-time recovery (see docs/operations.md, Backup and restore)")
	errRestorePostgres = errors.New("restore writes an embedded SQLite database only; restore PostgreSQL with pg_restore " +
		"from a pg_dump -Fc file, or from a base backup and archived WAL (see docs/operations.md, Backup and restore)")
)

// backupCommand is feedbackd backup.
func backupCommand(dbFlag *cli.StringFlag, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "write a consistent, checked copy of a live SQLite database",
		ArgsUsage: "OUT",
		Description: "Copies --db to OUT with SQLite's VACUUM INTO while a server may go on writing to it: the\n" +
			"copy holds exactly what was committed when it began. It is written beside OUT, synced,\n" +
			"checked (PRAGMA integrity_check) and only then renamed to OUT, so OUT is never a partial\n" +
			"copy. One line on stdout says what was written; on any failure, nothing is printed there\n" +
			"and the exit status is 1, for cron. For PostgreSQL, use pg_dump (see docs/operations.md).",
		Flags: []cli.Flag{
			withUsage(dbFlag, "the SQLite database file to copy (opened read-only, never created)"),
			&cli.BoolFlag{Name: "force", Usage: "replace OUT when it exists"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return errors.New("backup takes exactly one argument, the file to write (OUT)")
			}
			db, out := cmd.String("db"), cmd.Args().First()
			if isPostgres(db) {
				return errBackupPostgres
			}
			start := time.Now()
			info, err := sqlite.Backup(ctx, db, out, cmd.Bool("force"))
			if err != nil {
				return fmt.Errorf("backup of %s: %w", db, err)
			}
			_, err = fmt.Fprintf(stdout, "backed up %s to %s: %d feedback, %d bytes (%s), schema %d, integrity ok, in %s\n",
				db, out, info.Feedback, info.Size, humanBytes(info.Size), info.Version, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
}

// restoreCommand is feedbackd restore.
func restoreCommand(dbFlag *cli.StringFlag, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "bring a backup back as a SQLite database, with the server stopped",
		ArgsUsage: "BACKUP",
		Description: "Checks BACKUP (SQLite's integrity check, and that it is a feedbackd database), copies it\n" +
			"to --db the same atomic way backup writes, and applies the migrations of this build. An\n" +
			"existing --db is refused unless --force; replace a database only with its server stopped,\n" +
			"or restore to a new file and point the server at it.",
		Flags: []cli.Flag{
			withUsage(dbFlag, "the SQLite database file to write"),
			&cli.BoolFlag{Name: "force", Usage: "replace --db when it exists (stop its server first)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return errors.New("restore takes exactly one argument, the backup file (BACKUP)")
			}
			db, backup := cmd.String("db"), cmd.Args().First()
			if isPostgres(db) {
				return errRestorePostgres
			}
			if _, err := sqlite.Inspect(ctx, backup); err != nil {
				return fmt.Errorf("restore refused: %w", err)
			}
			info, err := sqlite.Backup(ctx, backup, db, cmd.Bool("force"))
			if err != nil {
				return fmt.Errorf("restore of %s: %w", backup, err)
			}
			// Opening the store applies the migrations this build has and
			// the backup lacks.
			if err := migrate(ctx, db); err != nil {
				return fmt.Errorf("restored %s to %s, but migrating it failed: %w", backup, db, err)
			}
			after, err := sqlite.Inspect(ctx, db)
			if err != nil {
				return fmt.Errorf("restored %s to %s, but: %w", backup, db, err)
			}
			_, err = fmt.Fprintf(stdout, "restored %s to %s: %d feedback, schema %d (backup's %d)\n",
				backup, db, after.Feedback, after.Version, info.Version)
			return err
		},
	}
}

// withUsage is a copy of f (name, default, environment variable) with the
// help text of one command.
func withUsage(f *cli.StringFlag, usage string) *cli.StringFlag {
	c := *f
	c.Usage = usage
	return &c
}

// humanBytes spells n in binary units for people; the exact count is
// printed beside it.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
