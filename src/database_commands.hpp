// Commands that need a database without connections (DROP DATABASE, ALTER DATABASE ... RENAME TO
// or SET TABLESPACE, CREATE DATABASE ... TEMPLATE): the refresh worker connected to that database
// is stopped before the command and held off until it is over.
#pragma once

namespace s3scan {

// Installs the ProcessUtility hook (in every session that loads the library).
void install_database_command_hook();

}  // namespace s3scan
